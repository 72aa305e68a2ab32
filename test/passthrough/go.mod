module github.com/zegocallback/passthrough

go 1.22
