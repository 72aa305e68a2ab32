module github.com/zegocallback/traefik-zego-callback

go 1.22
