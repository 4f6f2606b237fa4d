/*
 * The empty program each layer check links a whole layer into (see
 * CMakeLists.txt, "Layer checks"): it calls nothing, so the link succeeds
 * only when every symbol the layer uses comes from itself or a layer below.
 */
int
main(void)
{
    return 0;
}
