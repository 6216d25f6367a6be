# zkbench: load generator for ZooKeeper-protocol servers (quorumfsd, Apache ZooKeeper).
find_library(ZK_MT zookeeper_mt REQUIRED)
find_path(ZK_INCLUDE zookeeper/zookeeper.h REQUIRED)
add_executable(zkbench ${CMAKE_CURRENT_LIST_DIR}/zkbench.cc)
# THREADED exposes the synchronous calls used for setup and cleanup.
target_compile_definitions(zkbench PRIVATE THREADED)
target_include_directories(zkbench SYSTEM PRIVATE ${ZK_INCLUDE})
target_link_libraries(zkbench PRIVATE ${ZK_MT} Threads::Threads)
