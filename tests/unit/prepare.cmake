qfs_test(prepare_test ${CMAKE_CURRENT_LIST_DIR}/prepare_test.cc)
target_link_libraries(prepare_test PRIVATE qfs_tree)

qfs_test(tree_property_test ${CMAKE_CURRENT_LIST_DIR}/tree_property_test.cc)
target_link_libraries(tree_property_test PRIVATE qfs_tree)
