/* The host emulation of kernels/cuda/reduce.cu: the same source, compiled as
 * C++ for the host (see launch.h and runtime.h). */
#include "../reduce.cu"
