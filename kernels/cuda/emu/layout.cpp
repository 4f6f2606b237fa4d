/* The host emulation of kernels/cuda/layout.cu: the same source, compiled as
 * C++ for the host (see launch.h and runtime.h). */
#include "../layout.cu"
