# quorumfs log-dump / snapshot-dump on a real member's files (docs/tools.md).
add_test(NAME dump_tools
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dump_test.sh $<TARGET_FILE:quorumfsd> $<TARGET_FILE:quorumfs>)
set_tests_properties(dump_tools PROPERTIES TIMEOUT 120)

# INSTALLS INTO THE SYSTEM: builds the .deb, dpkg -i's it, runs the installed binaries, then
# dpkg -r's it (docs/install.md). Needs root. The Release package (scripts/package) where
# build/release exists or QFS_PACKAGE_TEST=1 (scripts/test --long); otherwise this build's own
# package (prefix /usr, scripts/build asan), so the default run needs no extra build.
add_test(NAME package_install_system
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/package_test.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(package_install_system PROPERTIES TIMEOUT 1200 SKIP_RETURN_CODE 77
  LABELS system-install RESOURCE_LOCK qfs_system_install)
