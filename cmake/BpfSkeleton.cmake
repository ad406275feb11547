# add_bpf_skeleton(<target> <file.bpf.c> [INCLUDES dir...])
#
# Compiles <file.bpf.c> with clang -target bpf against the checked-in
# vmlinux/<arch>/vmlinux.h (never the build host's BTF), runs `bpftool gen skeleton`
# and exposes an INTERFACE target <target> whose include directory holds
# <name>.skel.h. The BPF object is embedded in the skeleton, hence in the binary.
#
# bpf_compile_command(<out_var> ARCH <x86|arm64> SOURCE <file.bpf.c> OUTPUT <file.o>
#                     [INCLUDES dir...] [EXTRA_ARGS arg...])
#
# The clang command line for one architecture, shared by add_bpf_skeleton and
# the test that compiles the object for the architecture the build is not for.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# One vmlinux.h per architecture: pt_regs (kprobes) and a few types differ.
get_filename_component(BPF_VMLINUX_ROOT ${CMAKE_CURRENT_LIST_DIR}/../vmlinux ABSOLUTE)
set(BPF_ARCHES x86 arm64)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "rsttrace: no BPF target arch for ${CMAKE_SYSTEM_PROCESSOR} (have: ${BPF_ARCHES})")
endif()

function(bpf_compile_command out_var)
  cmake_parse_arguments(ARG "" "ARCH;SOURCE;OUTPUT" "INCLUDES;EXTRA_ARGS" ${ARGN})
  if(NOT ARG_ARCH IN_LIST BPF_ARCHES)
    message(FATAL_ERROR "rsttrace: no vmlinux/${ARG_ARCH}/vmlinux.h (have: ${BPF_ARCHES})")
  endif()
  set(include_flags -I${BPF_VMLINUX_ROOT}/${ARG_ARCH})
  foreach(dir ${ARG_INCLUDES})
    list(APPEND include_flags -I${dir})
  endforeach()
  set(${out_var}
      ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${ARG_ARCH}
      ${include_flags} ${ARG_EXTRA_ARGS} -c ${ARG_SOURCE} -o ${ARG_OUTPUT}
      PARENT_SCOPE)
endfunction()

function(add_bpf_skeleton target source)
  cmake_parse_arguments(ARG "" "" "INCLUDES" ${ARGN})
  get_filename_component(name ${source} NAME_WE)   # rsttrace.bpf.c -> rsttrace
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${target})
  set(object ${out_dir}/${name}.bpf.o)
  set(skeleton ${out_dir}/${name}.skel.h)
  # clang -MD lists every header the object depends on, for rebuilds.
  bpf_compile_command(compile ARCH ${BPF_TARGET_ARCH} SOURCE ${source} OUTPUT ${object}
                      INCLUDES ${ARG_INCLUDES} EXTRA_ARGS -MD -MF ${object}.d)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${compile}
    DEPFILE ${object}.d
    DEPENDS ${source}
    COMMENT "BPF ${name}.bpf.c (${BPF_TARGET_ARCH})"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND sh -c "\"$1\" gen skeleton \"$2\" name \"$3\" > \"$4\"" sh ${BPFTOOL} ${object} ${name}_bpf ${skeleton}
    DEPENDS ${object}
    COMMENT "bpftool gen skeleton ${name}"
    VERBATIM)
  add_custom_target(${target}_generate DEPENDS ${skeleton})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_generate)
  target_include_directories(${target} INTERFACE ${out_dir})
endfunction()
