# The ZooKeeper wire protocol: jute encoding, request/response records, conversion to tree requests.
add_library(qfs_jute STATIC ${CMAKE_CURRENT_LIST_DIR}/jute.cc ${CMAKE_CURRENT_LIST_DIR}/protocol.cc)
target_link_libraries(qfs_jute PUBLIC qfs_tree)
