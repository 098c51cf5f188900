"""Neural algorithmic reasoning: learned executors of classical algorithms (the CLRS benchmark) with the
triplet-GMPNN processor, trained on small instances and tested on larger ones."""
