# The official Apache Airflow 3.3 image with this project's requirements (used by docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/project/
RUN pip install --no-cache-dir -r /opt/project/requirements.txt -c /opt/project/constraints.txt
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow
