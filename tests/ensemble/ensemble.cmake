# The ensemble under real faults: scripts/ensemble's library (ensemble.py), the loopback link
# proxy (netproxy.py), the history recorder (history.py) and checker (checker.py), and the fault
# scenarios (test_faults.py: kill -9 leader / follower, SIGSTOP leader past the session timeout,
# leader cut off by the proxy, restart of every member, a session's failover with its ephemeral
# node and watches). Apache ZooKeeper 3.8 is the reference: ensemble_faults_vs_zookeeper runs
# the same scenarios against a 3-member ZooKeeper ensemble.
# QFS_ENSEMBLE_SOAK=1 runs longer loads, three rounds.
set(QFS_ENSEMBLE_PY /usr/bin/python3)  # the python that has python3-kazoo
set(QFS_ENSEMBLE_DIR ${CMAKE_CURRENT_LIST_DIR})

add_test(NAME ensemble_checker
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_checker.py)
add_test(NAME ensemble_faults_vs_zookeeper
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_faults.py --kind zk --members 3)
add_test(NAME ensemble_faults_3
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_faults.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd> --members 3)
add_test(NAME ensemble_faults_5
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_faults.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd> --members 5)
add_test(NAME ensemble_faults_linearizable
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_faults.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd> --members 3 --linearizable
          kill-leader partition-leader)
set_tests_properties(ensemble_checker PROPERTIES TIMEOUT 300)
# one ensemble at a time: they share 2 CPUs, and recovery times are measured
set_tests_properties(ensemble_faults_vs_zookeeper ensemble_faults_3 ensemble_faults_5
  ensemble_faults_linearizable PROPERTIES TIMEOUT 900
  RESOURCE_LOCK qfs_ensemble)

# Read-only mode (readonlymode.enabled, docs/read-only.md): a member cut off by kill -9 of the
# other two serves read-only kazoo (and C client) sessions, refuses writes with ZNOTREADONLY,
# and after the heal its client ends up on a read-write member. ZooKeeper 3.8 is the control.
set(QFS_RO_C_CLIENT_ARGS)
if(QFS_ZOOKEEPER_MT AND QFS_ZOOKEEPER_INCLUDE)
  add_executable(ro_c_client ${CMAKE_CURRENT_LIST_DIR}/ro_c_client.c)
  target_compile_definitions(ro_c_client PRIVATE THREADED)
  target_include_directories(ro_c_client PRIVATE ${QFS_ZOOKEEPER_INCLUDE})
  target_link_libraries(ro_c_client PRIVATE ${QFS_ZOOKEEPER_MT} Threads::Threads)
  set_target_properties(ro_c_client PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  set(QFS_RO_C_CLIENT_ARGS --c-client $<TARGET_FILE:ro_c_client>)
endif()
add_test(NAME read_only_vs_zookeeper
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_read_only.py --kind zk
          ${QFS_RO_C_CLIENT_ARGS})
add_test(NAME read_only_3
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_read_only.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd> ${QFS_RO_C_CLIENT_ARGS})
# The same member cut off by the link proxy while the two others serve (quorumfsd only; see
# tests/ensemble/README.md): its read-only reads miss the majority's write, the heal brings it.
add_test(NAME read_only_partition
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_read_only.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd> --cut partition)
set_tests_properties(read_only_vs_zookeeper read_only_3 read_only_partition PROPERTIES
  TIMEOUT 180 RESOURCE_LOCK qfs_ensemble)

# Quotas on 3 members (docs/quotas.md): usage equal on every member and to a walk, across a
# follower's kill -9 and restart; a hard limit refused through a follower.
add_test(NAME quota_ensemble
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_quota_ensemble.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(quota_ensemble PROPERTIES TIMEOUT 300 RESOURCE_LOCK qfs_ensemble)

# A refusal (BadVersion, ...) decided on a txn not committed yet waits for its commit
# (docs/ensemble.md, "Refusals"): a follower stopped and the other's log writer thread stopped,
# a CAS forwarded by it and one on the leader. 5-12 s.
add_test(NAME refusals_wait_for_commit
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_refusals.py --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(refusals_wait_for_commit PROPERTIES TIMEOUT 300 RESOURCE_LOCK qfs_ensemble)

# Dynamic reconfiguration (docs/reconfig.md): /zookeeper/config's format, reconfig's error codes
# (NOAUTH, BADVERSION, BADARGUMENTS, NEWCONFIGNOQUORUM leaving the configuration as it was),
# zkCli.sh reconfig -remove/-add with a watch firing, kazoo growing 3 -> 5 and shrinking 5 -> 3
# (the leader removed) under load with the history checker, a restart keeping the membership,
# joiners syncing before the reconfig, and a member that missed reconfigs. Apache ZooKeeper 3.8
# runs the same scenarios as the control (about a minute with its JVM starts).
add_test(NAME reconfig_3
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_reconfig.py --kind quorumfsd
          --quorumfsd $<TARGET_FILE:quorumfsd>)
add_test(NAME reconfig_vs_zookeeper
  COMMAND ${QFS_ENSEMBLE_PY} ${QFS_ENSEMBLE_DIR}/test_reconfig.py --kind zk)
set_tests_properties(reconfig_3 reconfig_vs_zookeeper PROPERTIES TIMEOUT 300
  RESOURCE_LOCK qfs_ensemble)
