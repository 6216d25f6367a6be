# Faults on real network paths (docs/faults.md): the ensemble in a network namespace of the
# test's own, each member on its own 127.0.0.N, netem or netfilter faults between address pairs
# (qfs_shaper holds, duplicates and reorders real packets through NFQUEUE where the kernel lacks
# netem), a member's clock jumped with libfaketime, its log writer thread stopped. Every scenario
# is judged by the history checker (tests/ensemble). As root; skipped (77) otherwise.
# QFS_LONG=1 (scripts/test --long) makes the faults and loads longer, three rounds.
find_library(QFS_NETFILTER_QUEUE netfilter_queue)
if(QFS_NETFILTER_QUEUE)
  add_executable(qfs_shaper ${CMAKE_CURRENT_LIST_DIR}/shaper.c)
  target_link_libraries(qfs_shaper PRIVATE ${QFS_NETFILTER_QUEUE})
  set_target_properties(qfs_shaper PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  add_test(NAME netns_faults
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_netns.py
            --quorumfsd $<TARGET_FILE:quorumfsd> --shaper $<TARGET_FILE:qfs_shaper>
            --zkbench $<TARGET_FILE:zkbench>)
  # RUN_SERIAL: the 20 ms throughput figure and the timing of the faults want a quiet machine
  set_tests_properties(netns_faults PROPERTIES TIMEOUT 2000 RUN_SERIAL TRUE
    SKIP_RETURN_CODE 77 RESOURCE_LOCK qfs_ensemble)
else()
  message(STATUS "libnetfilter-queue not found: netns_faults is not built (scripts/setup)")
endif()
