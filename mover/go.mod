module kube-migrate/mover

go 1.26
