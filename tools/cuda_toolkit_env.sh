# shellcheck shell=bash
# Sourced by the CUDA builds that run without a GPU (tools/cuda_compile_check.sh, tools/gpu_rehearsal.sh):
# exports CUDA_HOME and CPATH for building against the torch CUDA wheel of a venv.
# Usage: source tools/cuda_toolkit_env.sh VENV_PYTHON

# nvcc may be a wrapper script outside the toolkit, so ask nvcc where its toolkit is.
export CUDA_HOME=${CUDA_HOME:-$(cd "$(nvcc --dryrun -E -x cu /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p')" && pwd)}
# The toolkit here lacks some headers torch includes (cusparse.h); torch's own CUDA wheels have them.
CPATH=$("$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13/include${CPATH:+:$CPATH}
export CPATH
