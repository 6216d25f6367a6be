qfs_test(tree_test ${CMAKE_CURRENT_LIST_DIR}/tree_test.cc)
target_link_libraries(tree_test PRIVATE qfs_tree)
qfs_test(quota_test ${CMAKE_CURRENT_LIST_DIR}/quota_test.cc)
target_link_libraries(quota_test PRIVATE qfs_tree)
