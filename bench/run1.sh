set -u
export OUT=${OUT:-/tmp/out}
timeout 420 bash bench/gpu_job.sh rmsnorm softmax log_softmax
export PYTHONPATH=$PWD:/tmp/site XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout 60 python3 -m bench.tune softmax --tokens 1,32,512,4096 2>&1 | grep "^tune" | tee $OUT/tune.log
timeout 150 python3 -m bench.tune matmul --tokens 1,32,256,4096 2>&1 | grep "^tune" | tee -a $OUT/tune.log
