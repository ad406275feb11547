# The git revision the build is configured from, for `rsttrace --version`:
# the commit (12 hex digits), "unknown" outside a git checkout. Set
# -DRSTTRACE_GIT_REVISION=... to impose one (scripts/build-deb builds a copy
# of the tree and passes the tree's). CMake reconfigures when HEAD moves
# (HEAD and the branch's ref are configure dependencies), so a rebuild after a
# commit names the new one.
set(RSTTRACE_GIT_REVISION "" CACHE STRING "git revision for --version (empty: ask git at configure time)")
set(rsttrace_revision "${RSTTRACE_GIT_REVISION}")
if(rsttrace_revision STREQUAL "")
  set(rsttrace_revision "unknown")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} rev-parse --show-toplevel
                    OUTPUT_VARIABLE toplevel RESULT_VARIABLE toplevel_result
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    # Only this tree's own repository: a tarball unpacked inside another checkout is "unknown".
    if(toplevel_result EQUAL 0 AND toplevel STREQUAL PROJECT_SOURCE_DIR)
      execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} rev-parse --short=12 HEAD
                      OUTPUT_VARIABLE head RESULT_VARIABLE head_result
                      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(head_result EQUAL 0 AND head MATCHES "^[0-9a-f]+$")
        set(rsttrace_revision "${head}")
      endif()
      execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} rev-parse --path-format=absolute --git-path HEAD
                      OUTPUT_VARIABLE head_file OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} symbolic-ref -q HEAD
                      OUTPUT_VARIABLE branch OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      set(watched "${head_file}")
      if(branch)
        execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} rev-parse --path-format=absolute --git-path ${branch}
                        OUTPUT_VARIABLE ref_file OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        list(APPEND watched "${ref_file}")
        execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} rev-parse --path-format=absolute --git-path packed-refs
                        OUTPUT_VARIABLE packed_file OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        list(APPEND watched "${packed_file}")
      endif()
      foreach(file ${watched})
        if(EXISTS "${file}")
          set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${file}")
        endif()
      endforeach()
    endif()
  endif()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/rsttrace_version.h.in ${PROJECT_BINARY_DIR}/generated/rsttrace_version.h @ONLY)
