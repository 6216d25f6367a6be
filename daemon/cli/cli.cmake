# quorumfs: the command-line client, on the ZooKeeper C client library.
find_library(ZK_MT zookeeper_mt REQUIRED)
find_path(ZK_INCLUDE zookeeper/zookeeper.h REQUIRED)
add_executable(quorumfs ${CMAKE_CURRENT_LIST_DIR}/quorumfs_cli.cc)
# THREADED exposes the synchronous calls of the multi-threaded client.
target_compile_definitions(quorumfs PRIVATE THREADED)
target_include_directories(quorumfs SYSTEM PRIVATE ${ZK_INCLUDE})
target_link_libraries(quorumfs PRIVATE ${ZK_MT} Threads::Threads)
# log-dump and snapshot-dump read a member's files with the daemon's own readers.
target_sources(quorumfs PRIVATE ${CMAKE_CURRENT_LIST_DIR}/dump.cc)
target_link_libraries(quorumfs PRIVATE qfs_tree qfs_storage)

# import-zookeeper (docs/migration.md): ZooKeeper's file formats and the importer, on the daemon's
# tree and snapshot writer.
add_library(qfs_zkimport STATIC ${CMAKE_CURRENT_LIST_DIR}/zk_format.cc
            ${CMAKE_CURRENT_LIST_DIR}/import_zookeeper.cc)
target_link_libraries(qfs_zkimport PUBLIC qfs_jute qfs_tree qfs_storage)
target_link_libraries(quorumfs PRIVATE qfs_zkimport)
