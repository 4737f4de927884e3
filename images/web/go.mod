module roadlab.dev/images/web

go 1.23
