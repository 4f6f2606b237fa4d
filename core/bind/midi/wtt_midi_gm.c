/*
 * wtt_midi_gm.c: the General MIDI program table of `wtt.midi`: the 128
 * names and the PROGRAMS table of short names. See wtt_midi_private.h for
 * the other parts.
 */
#include "wtt_midi_private.h"

#include <ctype.h>
#include <stddef.h>


/* ------------------------------------------------------------------------
 * General MIDI programs
 * ------------------------------------------------------------------------ */


const char *const wtt__midi_gm_names[128] = {
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano",
    "Honky-tonk Piano", "Electric Piano 1", "Electric Piano 2", "Harpsichord",
    "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
    "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ",
    "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)",
    "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass",
    "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin",
    "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani", "String Ensemble 1", "String Ensemble 2",
    "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba",
    "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute",
    "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle",
    "Ocarina", "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)",
    "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)",
    "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
    "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo",
    "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum",
    "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise",
    "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter",
    "Applause", "Gunshot",
};


/* Short names for the instruments a user is likely to ask for. */
static const struct {
    const char *name;
    int         program;
} gm_aliases[] = {
    { "guitar",          25 },
    { "acoustic_guitar", 25 },
    { "electric_guitar", 27 },
    { "nylon_guitar",    24 },
    { "piano",            0 },
    { "electric_piano",   4 },   /* what the official tool always writes */
    { "bass",            33 },
    { NULL, 0 },
};


/* "Acoustic Guitar (nylon)" -> "acoustic_guitar_nylon" into buf[64]. */
static void
snake_name(const char *s, char *buf)
{
    size_t n = 0;
    int    sep = 0;

    for (; *s != '\0' && n < 62; s++) {
        if (isalnum((unsigned char) *s)) {
            if (sep && n > 0) {
                buf[n++] = '_';
            }
            buf[n++] = (char) tolower((unsigned char) *s);
            sep = 0;
        } else {
            sep = 1;
        }
    }
    buf[n] = '\0';
}



void
wtt__midi_push_programs(lua_State *L)
{
    char name[64];
    int  i;

    lua_createtable(L, 0, 140);                               /* P */
    for (i = 0; i < 128; i++) {
        snake_name(wtt__midi_gm_names[i], name);
        lua_pushinteger(L, i);
        lua_setfield(L, -2, name);
    }
    for (i = 0; gm_aliases[i].name != NULL; i++) {
        lua_pushinteger(L, gm_aliases[i].program);
        lua_setfield(L, -2, gm_aliases[i].name);
    }
}
