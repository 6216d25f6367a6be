qfs_test(jute_test ${CMAKE_CURRENT_LIST_DIR}/jute_test.cc)
target_link_libraries(jute_test PRIVATE qfs_jute)
