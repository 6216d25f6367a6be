add_test(NAME client_port_protection
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/protection_test.py $<TARGET_FILE:quorumfsd>)
set_tests_properties(client_port_protection PROPERTIES TIMEOUT 120)
