# add_bpf_skeleton(<target> <file.bpf.c> [INCLUDES dir...])
#
# Compiles <file.bpf.c> with clang -target bpf against the checked-in
# vmlinux/vmlinux.h (never the build host's BTF), runs `bpftool gen skeleton`
# and exposes an INTERFACE target <target> whose include directory holds
# <name>.skel.h. The BPF object is embedded in the skeleton, hence in the binary.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "rsttrace: no BPF target arch for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(add_bpf_skeleton target source)
  cmake_parse_arguments(ARG "" "" "INCLUDES" ${ARGN})
  get_filename_component(name ${source} NAME_WE)   # rsttrace.bpf.c -> rsttrace
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${target})
  set(object ${out_dir}/${name}.bpf.o)
  set(skeleton ${out_dir}/${name}.skel.h)
  set(include_flags)
  foreach(dir ${ARG_INCLUDES})
    list(APPEND include_flags -I${dir})
  endforeach()
  # clang -MD lists every header the object depends on, for rebuilds.
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            ${include_flags} -MD -MF ${object}.d -c ${source} -o ${object}
    DEPFILE ${object}.d
    DEPENDS ${source}
    COMMENT "BPF ${name}.bpf.c"
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
