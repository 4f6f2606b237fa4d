/*
 * names.h: the host emulation's own names for the CUDA backend's private
 * symbols (force-included into every source of wtt_backend_cuda_emu by
 * CMakeLists.txt). The emulation compiles the same sources as the device
 * backend, and a binary may link both (the C test runner does), so each
 * non-static symbol of kernels/cuda/ gets a distinct name here. A new
 * non-static function in kernels/cuda/ needs a line below; everything else
 * there stays static.
 */
#ifndef WTT_CUDA_EMU_NAMES_H
#define WTT_CUDA_EMU_NAMES_H

#define wtt_cuda_status           wtt_cuda_emu_status
#define wtt_cuda_tensor_alloc     wtt_cuda_emu_tensor_alloc
#define wtt_cuda_tensor_view      wtt_cuda_emu_tensor_view
#define wtt_cuda_buffer_free      wtt_cuda_emu_buffer_free
#define wtt_cuda_op_conv2d        wtt_cuda_emu_op_conv2d
#define wtt_cuda_op_eltwise       wtt_cuda_emu_op_eltwise
#define wtt_cuda_op_reduce        wtt_cuda_emu_op_reduce
#define wtt_cuda_op_view          wtt_cuda_emu_op_view
#define wtt_cuda_op_layout        wtt_cuda_emu_op_layout
#define wtt_cuda_rt_device_count  wtt_cuda_emu_rt_device_count
#define wtt_cuda_rt_device_info   wtt_cuda_emu_rt_device_info
#define wtt_cuda_rt_ctx_init      wtt_cuda_emu_rt_ctx_init
#define wtt_cuda_rt_ctx_fini      wtt_cuda_emu_rt_ctx_fini
#define wtt_cuda_rt_bind          wtt_cuda_emu_rt_bind
#define wtt_cuda_rt_malloc        wtt_cuda_emu_rt_malloc
#define wtt_cuda_rt_free          wtt_cuda_emu_rt_free
#define wtt_cuda_rt_host_alloc    wtt_cuda_emu_rt_host_alloc
#define wtt_cuda_rt_host_free     wtt_cuda_emu_rt_host_free
#define wtt_cuda_rt_copy          wtt_cuda_emu_rt_copy
#define wtt_cuda_rt_sync          wtt_cuda_emu_rt_sync
#define wtt_cuda_rt_capture_begin wtt_cuda_emu_rt_capture_begin
#define wtt_cuda_rt_capture_end   wtt_cuda_emu_rt_capture_end
#define wtt_cuda_rt_graph_launch  wtt_cuda_emu_rt_graph_launch
#define wtt_cuda_rt_graph_free    wtt_cuda_emu_rt_graph_free
#define wtt_backend_cuda_graph_replays wtt_backend_cuda_emu_graph_replays

#endif
