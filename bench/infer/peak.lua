-- OpenBLAS sgemm peak on this machine (GFLOP/s), for bench/infer.sh.
-- usage: wtt run peak.lua THREADS
local ffi = require "ffi"
local sys = require "wtt.sys"
ffi.cdef [[
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);
void openblas_set_num_threads(int n);
]]
-- The engine does not link OpenBLAS (its direct kernels are faster and
-- exact here); the yardstick is loaded for this measurement only.
local blas = ffi.load("openblas")
local threads, n = tonumber(arg[1] or 1), 1536
blas.openblas_set_num_threads(threads)
local a, b, c = ffi.new("float[?]", n * n), ffi.new("float[?]", n * n),
                ffi.new("float[?]", n * n)
for i = 0, n * n - 1 do a[i] = (i % 7) * 0.1; b[i] = (i % 5) * 0.1 end
local best = 0
for _ = 1, 5 do
    local t0 = sys.now()
    blas.cblas_sgemm(101, 111, 111, n, n, n, 1, a, n, b, n, 0, c, n)
    best = math.max(best, 2 * n * n * n / (sys.now() - t0) / 1e9)
end
io.write(string.format("sgemm threads=%d gflops=%.1f\n", threads, best))
