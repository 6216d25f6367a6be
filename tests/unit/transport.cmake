# Peer transport between members: framing, handshake, FIFO-or-reset links.
qfs_test(transport_test ${CMAKE_CURRENT_LIST_DIR}/transport_test.cc)
target_link_libraries(transport_test PRIVATE qfs_transport)
