/*
 * fuzz_audio.c: audio probing and decoding (core/bind/wtt_audio.c) of an
 * uploaded file: the header checks of wtt_audio_probe, then
 * wtt_audio_load's whole decode (libsndfile: WAV, RF64, AIFF, FLAC, Ogg
 * Vorbis/Opus, MP3...; mono mix; libsoxr resampling). Both take a path,
 * as the worker gives them, so each input is written to a memfd and read
 * back through /proc/self/fd: the same open, seek and read calls as a file
 * on disk, without touching the disk.
 *
 * The duration limit is 2 s instead of the 4 h default so that one input
 * cannot decode for minutes: the limit is checked on the same code path
 * whatever its value (the 4 h case is the audio-bomb spec's job).
 */
#include "wtt_audio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int  fd = -1;
static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wtt_audio_params p = wtt_audio_default_params();
    struct wtt_audio_info   info;
    struct wtt_pcm          pcm = { 0 };
    char                    err[WTT_AUDIO_ERRLEN];

    if (fd < 0) {
        fd = memfd_create("wtt-fuzz-audio", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0
        || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t) size))
    {
        perror("memfd write");
        abort();
    }
    p.max_duration_s = 2.0;
    p.block_frames = 4096;
    if (wtt_audio_probe(path, &p, &info, err, sizeof(err)) != 0
        && err[0] == '\0')
    {
        abort();                     /* a failure must say why */
    }
    if (wtt_audio_load(path, &p, &pcm, &info, err, sizeof(err)) == 0) {
        volatile float sum = 0;
        for (size_t i = 0; i < pcm.n; i++) {
            sum += pcm.data[i];
        }
        (void) sum;
        wtt_pcm_release(&pcm);
    } else if (err[0] == '\0') {
        abort();
    }
    return 0;
}
