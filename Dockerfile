# A custom Beam SDK container for running vlcurate on Dataflow with every stage available:
# Chromium and fonts for the web pipeline, Tesseract's data for --ocr-engine tesseract.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/vlcurate:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/vlcurate:0.1.0
#   vlcurate run recipe.yaml --runner DataflowRunner --project PROJECT --region REGION \
#     --temp_location gs://BUCKET/tmp --sdk_container_image REGION-docker.pkg.dev/PROJECT/REPO/vlcurate:0.1.0 \
#     --experiments=use_runner_v2
#
# The Beam version of the base image must be the one pinned in requirements.txt.
FROM apache/beam_python3.11_sdk:2.77.0

# The same Debian packages the Makefile installs for make demo (chromium is driven by Playwright
# through its executable path; Playwright's own browser download is never used).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      chromium fonts-noto-core fonts-noto-cjk tesseract-ocr-eng tesseract-ocr-osd \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vlcurate
COPY requirements.txt requirements-nodeps.txt ./
# torch from PyPI is the CUDA build; Dataflow CPU workers want the CPU wheels.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY vlcurate vlcurate
COPY pipelines pipelines
COPY transforms transforms
COPY taxonomy taxonomy
COPY training training
RUN pip install --no-cache-dir --no-deps .

# The SDK harness is the base image's entry point (/opt/apache/beam/boot): kept as it is.
