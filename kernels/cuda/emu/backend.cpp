/* The host emulation of kernels/cuda/backend.cu: the same source, compiled as
 * C++ for the host (see launch.h and runtime.h). */
#include "../backend.cu"
