//go:build !linux

package connsync

import (
	"errors"
	"net"
)

var errUnsupported = errors.New("connsync: transport needs Linux")

func openSenderSocket(*SenderConfig) (*net.UDPConn, error)     { return nil, errUnsupported }
func openReceiverSocket(*ReceiverConfig) (*net.UDPConn, error) { return nil, errUnsupported }
