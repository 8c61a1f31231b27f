"""``alvo plot spectrum FILE...``: native spectrum and its adapted features, as PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="draw spectra as PNG for checking by eye",
        description="Draw spectra as PNG figures.",
    )
    actions = parser.add_subparsers(dest="plot_action", metavar="WHAT", required=True)
    spectrum = actions.add_parser(
        "spectrum",
        help="native spectrum around H-alpha beside its adapted feature vector",
        description=(
            "Read each FILE (LAMOST, Ondrejov or IVOA Spectrum DM; the format is found from "
            "the content), adapt it, and draw one row per file: the native spectrum around "
            "H-alpha (its own medium, the feature window shaded) and the 140-pixel feature "
            "vector the classifier sees, or the reason it could not be adapted."
        ),
    )
    spectrum.add_argument("files", nargs="+", type=Path, metavar="FILE")
    spectrum.add_argument(
        "-o", "--output", type=Path, default=Path("spectrum.png"), help="PNG to write"
    )
    spectrum.add_argument("--dpi", type=int, default=110, help="resolution of the PNG")
    spectrum.add_argument(
        "--original",
        action="store_true",
        help="use the original adaptation (sigma 7 px, linear rebin, min-max)",
    )
    spectrum.set_defaults(func=spectrum_command)


def spectrum_command(args: argparse.Namespace) -> int:
    from service.adapt import AdaptConfig, adapt
    from service.plots import save_png, spectrum_figure
    from service.reasons import AlvoError
    from service.spectra import read_spectrum

    spectra, names = [], []
    for path in args.files:
        try:
            spectra.append(read_spectrum(path))
            names.append(path.name)
        except (AlvoError, OSError) as error:
            print(f"{path}: {error}", file=sys.stderr)
    if not spectra:
        return 1
    config = AdaptConfig.original() if args.original else AdaptConfig()
    batch = adapt(spectra, config)
    save_png(spectrum_figure(spectra, batch, names), args.output, dpi=args.dpi)
    for i, failure in batch.failures.items():
        print(f"{names[i]}: {failure}", file=sys.stderr)
    print(f"wrote {args.output}")
    return 0
