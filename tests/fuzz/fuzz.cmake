# Picked up by the tests/*/*.cmake glob: the fuzz targets (only with QFS_FUZZ=ON and clang).
add_subdirectory(${CMAKE_CURRENT_LIST_DIR})
