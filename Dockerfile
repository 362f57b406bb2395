# The official Apache Airflow 3.3 image with this project (used by docker-compose.yaml): the pinned
# requirements, then the pipeline package (pyproject.toml) and, for the demo profile's simulators, the tools.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/project/
RUN pip install --no-cache-dir -r /opt/project/requirements.txt -c /opt/project/constraints.txt
COPY pyproject.toml README.md /opt/project/
COPY include /opt/project/include
COPY tools /opt/project/tools
RUN pip install --no-cache-dir --no-deps --no-build-isolation /opt/project /opt/project/tools
