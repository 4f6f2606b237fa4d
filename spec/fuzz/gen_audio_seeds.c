/*
 * gen_audio_seeds.c: writes the audio seeds of spec/fuzz/corpus/audio/
 * (tiny files of each container and codec libsndfile reads). Not built by
 * CMake; run once by hand when a seed is added:
 *
 *   cc spec/fuzz/gen_audio_seeds.c -lsndfile -lm -o /tmp/gen &&
 *       /tmp/gen spec/fuzz/corpus/audio
 *
 * A codec this libsndfile cannot write is reported and skipped.
 */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>

static const struct {
    const char *name;
    int         format, rate, channels, frames;
} SEEDS[] = {
    { "pcm16_mono.wav",   SF_FORMAT_WAV | SF_FORMAT_PCM_16,   8000, 1, 200 },
    { "float_stereo.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT,   22050, 2, 100 },
    { "pcm24.wavex",      SF_FORMAT_WAVEX | SF_FORMAT_PCM_24, 44100, 2, 100 },
    { "ulaw.wav",         SF_FORMAT_WAV | SF_FORMAT_ULAW,      8000, 1, 100 },
    { "ima_adpcm.wav",    SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM, 8000, 1, 505 },
    { "ms_adpcm.wav",     SF_FORMAT_WAV | SF_FORMAT_MS_ADPCM,  8000, 1, 500 },
    { "pcm16.rf64",       SF_FORMAT_RF64 | SF_FORMAT_PCM_16,   8000, 1, 100 },
    { "pcm16.aiff",       SF_FORMAT_AIFF | SF_FORMAT_PCM_16,  11025, 1, 100 },
    { "pcm8.au",          SF_FORMAT_AU | SF_FORMAT_PCM_S8,     8000, 1, 100 },
    { "double.caf",       SF_FORMAT_CAF | SF_FORMAT_DOUBLE,    8000, 1, 100 },
    { "pcm16.w64",        SF_FORMAT_W64 | SF_FORMAT_PCM_16,    8000, 1, 100 },
    { "pcm16.flac",       SF_FORMAT_FLAC | SF_FORMAT_PCM_16,   8000, 1, 400 },
    { "stereo.flac",      SF_FORMAT_FLAC | SF_FORMAT_PCM_24,  44100, 2, 300 },
    { "vorbis.ogg",       SF_FORMAT_OGG | SF_FORMAT_VORBIS,   22050, 1, 800 },
    { "opus.opus",        SF_FORMAT_OGG | SF_FORMAT_OPUS,     48000, 1, 960 },
    { "layer3.mp3",       SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 22050, 1, 1152 },
};

int
main(int argc, char **argv)
{
    float buf[2 * 1200];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(SEEDS) / sizeof(SEEDS[0]); i++) {
        SF_INFO info = { 0 };
        SNDFILE *f;
        char     path[512];

        info.samplerate = SEEDS[i].rate;
        info.channels = SEEDS[i].channels;
        info.format = SEEDS[i].format;
        for (int k = 0; k < SEEDS[i].frames * SEEDS[i].channels; k++) {
            buf[k] = 0.5f * sinf(0.05f * (float) k);
        }
        snprintf(path, sizeof(path), "%s/%s", argv[1], SEEDS[i].name);
        f = sf_open(path, SFM_WRITE, &info);
        if (f == NULL) {
            fprintf(stderr, "skipped %s: %s\n", SEEDS[i].name, sf_strerror(NULL));
            continue;
        }
        sf_writef_float(f, buf, SEEDS[i].frames);
        sf_close(f);
    }
    return 0;
}
