#!/bin/sh
# Runs once, when the PostgreSQL container starts on an empty volume
# (/docker-entrypoint-initdb.d): per service, the owner role that migrates and the role
# the service runs as (service-roles.sql, decision 0034), with the passwords
# `govmedia secrets` made.
set -eu
for service in identity audit content interaction; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -v schema="govmedia_${service}" \
        -v owner="govmedia_${service}_owner" \
        -v app="govmedia_${service}" \
        -v owner_password="$(cat "/run/secrets/${service}-database-owner-password")" \
        -v app_password="$(cat "/run/secrets/${service}-database-password")" \
        -f /govmedia/service-roles.sql
done
