# Self-contained pieces of the client port: watches, authentication, SASL.
add_library(qfs_server_units STATIC
  ${CMAKE_CURRENT_LIST_DIR}/watch_manager.cc
  ${CMAKE_CURRENT_LIST_DIR}/auth.cc
  ${CMAKE_CURRENT_LIST_DIR}/sasl.cc)
target_link_libraries(qfs_server_units PUBLIC qfs_tree Threads::Threads OpenSSL::Crypto)
