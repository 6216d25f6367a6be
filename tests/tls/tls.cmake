# TLS (docs/tls.md). client_tls: kazoo, zkCli.sh (Netty, PEM stores) against a secure client
# port with need/want/none and x509 ACLs, on Apache ZooKeeper 3.8 (the control) and quorumfsd;
# certificates made by the test with openssl. quorum_tls: a 3-member ensemble with sslQuorum,
# a stranger with a self-signed certificate, bytes altered in flight, certificate rotation.
add_test(NAME client_tls
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_client_tls.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(client_tls PROPERTIES TIMEOUT 300)
add_test(NAME quorum_tls
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_quorum_tls.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(quorum_tls PROPERTIES TIMEOUT 300 RESOURCE_LOCK qfs_ensemble)
