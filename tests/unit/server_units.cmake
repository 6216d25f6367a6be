qfs_test(watch_manager_test ${CMAKE_CURRENT_LIST_DIR}/watch_manager_test.cc)
target_link_libraries(watch_manager_test PRIVATE qfs_server_units)
qfs_test(session_tracker_test ${CMAKE_CURRENT_LIST_DIR}/session_tracker_test.cc)
target_link_libraries(session_tracker_test PRIVATE qfs_service)
qfs_test(auth_test ${CMAKE_CURRENT_LIST_DIR}/auth_test.cc)
target_link_libraries(auth_test PRIVATE qfs_server_units)
# TLS helpers (docs/tls.md): x509 ids, store types, ssl.* config keys.
qfs_test(tls_test ${CMAKE_CURRENT_LIST_DIR}/tls_test.cc)
target_link_libraries(tls_test PRIVATE qfs_replica qfs_server_units qfs_tls)
