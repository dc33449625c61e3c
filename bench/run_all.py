"""All benchmarks, one after another (each writes bench/results/<name>.json)."""

from bench import features, quality, training


def main() -> None:
    for module in (features, training, quality):
        print(f"== {module.__name__}")
        module.main()


if __name__ == "__main__":
    main()
