# syntax=docker/dockerfile:1
# hookrelay: the consumer daemon, with the publisher and receiver CLIs.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
COPY sql/ sql/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
	./cmd/consumer ./cmd/publisher ./cmd/receiver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/consumer"]
