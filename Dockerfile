# erlbridge test/demo node: the fixture release 1.0.0 installed as a target system
# (RELEASES, start_erl.data, erts included), sasl running, and the 2.0.0 / 2.1.0
# tarballs in $FIXTURE_ROOT/tarballs for release_handler (fixture:unpack("2.0.0")).
#
#   docker build -t erlbridge-node:otp27 .                       # official erlang:27
#   docker build --build-arg BASE_IMAGE=erlbridge-base:otp25 -t erlbridge-node:otp25 .
#   docker run -e NODE_NAME=a -e ERLANG_COOKIE_FILE=/run/secrets/cookie ... erlbridge-node:otp27
#
# The base image must provide erl and rebar3 (3.19 or newer), e.g. the images
# scripts/build-base-images.sh makes from Debian bookworm / trixie / sid.
ARG BASE_IMAGE=erlang:27

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY rebar.config rebar.config.script ./
COPY scripts/build-fixtures.sh scripts/
COPY erlang_fixtures/apps erlang_fixtures/apps
COPY erlang_fixtures/config erlang_fixtures/config
RUN bash scripts/build-fixtures.sh /out

FROM ${BASE_IMAGE}
ENV FIXTURE_ROOT=/opt/fixture \
    FIXTURE_TARBALL_DIR=/opt/fixture/tarballs \
    LANG=C.UTF-8
COPY --from=build /out/ /opt/fixture/tarballs/
RUN tar xzf /opt/fixture/tarballs/fixture-1.0.0.tar.gz -C /opt/fixture \
 && test -f /opt/fixture/releases/RELEASES && test -f /opt/fixture/releases/start_erl.data
COPY scripts/docker-entrypoint.sh /usr/local/bin/erlbridge-node-entrypoint
EXPOSE 4369
ENTRYPOINT ["/usr/local/bin/erlbridge-node-entrypoint"]
