"""Small genotypes shared by tests: cheap to trace, yet exercising the main op kinds."""

# One block per cell (a separable conv, so ScheduledDropPath runs; pooling; the reduction's
# factorized paths): traces in a few seconds.
ONE_BLOCK = {
    "format": "nasnet_rl.genotype/1", "name": "one_block",
    "space": {"ops": "nasnet", "num_blocks": 1},
    "normal": {"blocks": [{"inputs": [0, 1], "ops": ["sep_conv_3x3", "identity"],
                           "combine": "add"}], "concat": [2]},
    "reduction": {"blocks": [{"inputs": [0, 1], "ops": ["max_pool_3x3", "sep_conv_3x3"],
                              "combine": "add"}], "concat": [2]}}
