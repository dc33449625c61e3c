"""All benchmarks, one after another (each writes bench/results/<name>.json)."""

from bench import features, leak, memory, quality, training, xray_overhead


def main() -> None:
    for module in (features, training, memory, quality, leak, xray_overhead):
        print(f"== {module.__name__}")
        module.main()


if __name__ == "__main__":
    main()
