qfs_test(prepare_test ${CMAKE_CURRENT_LIST_DIR}/prepare_test.cc)
target_link_libraries(prepare_test PRIVATE qfs_tree)

qfs_test(tree_property_test ${CMAKE_CURRENT_LIST_DIR}/tree_property_test.cc)
target_link_libraries(tree_property_test PRIVATE qfs_tree)

# Reconfig requests in prepare and ZooKeeper's configuration text (docs/reconfig.md).
qfs_test(reconfig_test ${CMAKE_CURRENT_LIST_DIR}/reconfig_test.cc)
target_link_libraries(reconfig_test PRIVATE qfs_tree)
