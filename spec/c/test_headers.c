/*
 * test_headers.c: every public header compiles on its own, in any order.
 */
#include "wtt_audio.h"
#include "wtt_backend.h"
#include "wtt_backend_cpu.h"
#include "wtt_backend_reg.h"
#include "wtt_elem.h"
#include "wtt_fingering.h"
#include "wtt_rhythm.h"
#include "wtt_grid.h"
#include "wtt_technique.h"
#include "wtt_reload.h"
#include "wtt_midi.h"
#include "wtt_model.h"
#include "wtt_nn.h"
#include "wtt_pipeline.h"
#include "wtt_shape.h"
#include "wtt_tensor.h"
#include "wtt_http_server.h"
#include "wtt_http_client.h"
#include "wtt_log.h"
#include "wtt_pg.h"
#include "wtt_redis.h"
#include "wtt_sys.h"
#include "wtt_tab.h"
#include "wtt_tab_rhythm.h"
#include "wtt_tab_out.h"
#include "wtt_tabdoc.h"
#include "wtt_tab_events.h"
#include "wtt_tab_grid.h"
#include "wtt_tab_technique.h"
#include "wtt_thread.h"
#include "wtt_zlib.h"
#include "wtt_redis_reply.h"
#include "wtt_frame_store.h"
#include "wtt_notes.h"
#include "wtt_notes_guitar.h"
#include "wtt_util.h"
#include "wtt_vm.h"
/* The private headers of split bindings must stand on their own too. */
#include "../../core/bind/http_server/wtt_http_private.h"
#include "../../core/bind/midi/wtt_midi_private.h"
#include "test.h"


int
test_headers_compile(void)
{
    return 0;
}
