set -x
export PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false
T=$(python3 -c "import triton,os;print(os.path.dirname(triton.__file__))")
$T/backends/nvidia/bin/ptxas --version | tail -2
J=$(python3 -c "import nvidia.cuda_nvcc as n,os;print(list(n.__path__)[0])" 2>/dev/null)
ls $J/bin 2>/dev/null; $J/bin/ptxas --version 2>/dev/null | tail -2
find / -name ptxas -type f 2>/dev/null | head; pip list 2>/dev/null | grep -i "nvidia\|jax\|triton"
python3 scratch/kargs.py default 2>&1 | grep -v "^W1\|^I1\|Warning\|warn"
if [ -x "$J/bin/ptxas" ]; then TRITON_CACHE_DIR=/tmp/tc2 TRITON_PTXAS_PATH=$J/bin/ptxas python3 scratch/kargs.py jaxptxas 2>&1 | grep -v "^W1\|^I1\|Warning\|warn"; fi
