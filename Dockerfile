# The image of every Airflow service in docker-compose.yaml: Airflow, the Celery provider and
# lookback with exactly the versions of uv.lock, nothing else.
#
# The base is python:3.11-slim, not apache/airflow: the official image comes with about a
# hundred packages installed at the versions of Airflow's own constraints file (providers for
# clouds lookback never talks to, their dependencies). Installing the lock over them would
# leave two sources of versions in one environment, and pip's resolver between them. Here the
# lock is the only one: `uv sync --locked` fails the build when uv.lock does not match
# pyproject.toml, and installs what the lock says, no more.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
# The uv of the Makefile (UV_VERSION), from PyPI like every other package.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/opt/lookback/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# The dependencies first, in a layer that changes only when the lock does.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project --python /usr/local/bin/python3.11
# Then lookback itself (the `lookback` command; hatchling reads README.md for the metadata).
COPY README.md ./
COPY include/lookback ./include/lookback
RUN uv sync --locked --no-dev --no-editable --python /usr/local/bin/python3.11

FROM ${PYTHON_IMAGE}
# curl for the health checks; tini as PID 1, passing SIGTERM on to the Celery worker so that
# it finishes its running tasks (warm shutdown) before the container stops.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl tini \
    && rm -rf /var/lib/apt/lists/*
# The user of the official image: uid 50000 in group 0, so that any AIRFLOW_UID:0 can write
# what the group owns.
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow \
    && chmod g+rwx /opt/airflow
COPY --from=build /opt/lookback/venv /opt/lookback/venv
# dags/, plugins/, include/ and expectations/ are in the image, so that it runs on its own;
# docker-compose.yaml mounts the checkout's over them, as the official compose file does.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 expectations /opt/airflow/expectations
# PYTHONPATH puts /opt/airflow/include before the installed copy of lookback: the code, the
# source YAML, the SQL and the suites then always come from the same folder.
ENV PATH=/opt/lookback/venv/bin:${PATH} \
    PYTHONPATH=/opt/airflow/include \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    LOOKBACK_INCLUDE_DIR=/opt/airflow/include \
    LOOKBACK_EXPECTATIONS_DIR=/opt/airflow/expectations \
    LOOKBACK_DATA_DIR=/opt/airflow/data
USER 50000
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--", "airflow"]
CMD ["version"]
