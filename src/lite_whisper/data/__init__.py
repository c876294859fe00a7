"""Speech data: loading audiofolders and `datasets` datasets (audio), mixing calibration sets (calibration_mix),
synthesized speech (synthesis), real recordings from packages (sources, real_speech), and the offline assets
built from them once (assets). Nothing here depends on the compression method."""
