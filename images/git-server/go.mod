module roadlab.dev/images/git-server

go 1.23.0
