qfs_test(zk_format_test ${CMAKE_CURRENT_LIST_DIR}/zk_format_test.cc)
target_link_libraries(zk_format_test PRIVATE qfs_zkimport)
