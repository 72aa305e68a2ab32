module github.com/zegocallback/floor

go 1.22
