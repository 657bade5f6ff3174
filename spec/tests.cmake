# Every test ctest runs: C unit tests (spec/c/*_test.c) and busted specs (spec/**/*_spec.lua) run inside silo-lua.
file(GLOB SILO_C_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/spec/c/*_test.c)
foreach(source ${SILO_C_TESTS})
  get_filename_component(name ${source} NAME_WE)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE silo_runtime)
  add_test(NAME c/${name} COMMAND ${name})
endforeach()

file(GLOB_RECURSE SILO_SPECS CONFIGURE_DEPENDS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} spec/*_spec.lua)
foreach(spec ${SILO_SPECS})
  add_test(NAME ${spec} COMMAND silo-lua run spec/busted.lua ${spec}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(${spec} PROPERTIES ENVIRONMENT "SILO_BIN=$<TARGET_FILE:silo-lua>")
endforeach()
if(NOT SILO_SPECS)
  message(FATAL_ERROR "no specs found under spec/: a suite that runs nothing must not pass")
endif()
