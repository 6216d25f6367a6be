# quorumfs log-dump / snapshot-dump on a real member's files (docs/tools.md).
add_test(NAME dump_tools
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dump_test.sh $<TARGET_FILE:quorumfsd> $<TARGET_FILE:quorumfs>)
set_tests_properties(dump_tools PROPERTIES TIMEOUT 120)

# INSTALLS INTO THE SYSTEM: builds the .deb (scripts/package, a Release build in build/release),
# dpkg -i's it, runs the installed binaries, then dpkg -r's it (docs/install.md). Needs root.
# Runs by default only where build/release already exists (a warm release build packages in
# seconds; a cold one takes minutes on 2 cores); QFS_PACKAGE_TEST=1 forces it, else skipped.
add_test(NAME package_install_system
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/package_test.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(package_install_system PROPERTIES TIMEOUT 1200 SKIP_RETURN_CODE 77
  LABELS system-install RESOURCE_LOCK qfs_system_install)
