"""Install nasnet_rl: `pip install -e .[dev]` for development, `.[ray]` for Ray executors."""

import setuptools

setuptools.setup(
    name="nasnet_rl",
    version="0.1.0",
    description="Reinforcement-learning neural architecture search (NASNet, ENAS) in TensorFlow 2",
    packages=setuptools.find_packages(include=["nasnet_rl", "nasnet_rl.*"]),
    package_data={"nasnet_rl": ["genotypes/*.json", "benchmarks/data/*", "gin/*.gin", "gin/*/*.gin"]},
    license="Apache-2.0",
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",  # the full build: CPU here, GPUs where CUDA is present
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets 4.9.10 imports it without declaring it
        "numpy",
        "absl-py",
        "gin-config>=0.5",
        "tensorboard",  # event files (tf.summary needs it to write) and the viewer
        "pillow",  # PNG/JPEG writing for cell pictures and image-folder tests
        "matplotlib",  # reward curves, strategy bands and scatter plots (nasnet_rl/plots.py)
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-xdist>=3"],
        "ray": ["ray>=2.9"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],  # pip-installed CUDA libraries for Linux GPUs
    },
    entry_points={
        "console_scripts": [
            "nasnet-search=nasnet_rl.cli.launch:search",
            "nasnet-train=nasnet_rl.cli.launch:train",
            "nasnet-transfer=nasnet_rl.cli.launch:transfer",
            "nasnet-show=nasnet_rl.cli.launch:show",
            "nasnet-compare-cells=nasnet_rl.cli.launch:compare_cells",
            "nasnet-rank-correlation=nasnet_rl.cli.launch:rank_correlation",
            "nasnet-compare-strategies=nasnet_rl.cli.launch:compare_strategies",
            "nasnet-doctor=nasnet_rl.cli.launch:doctor",
        ],
    },
)
